"""What a running process shares: settings, the session factory, channels and Rasa."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.db import make_engine, session_factory
from bot.rasa_client import RasaClient
from bot.settings import Settings
from channels.registry import ChannelSet


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    channels: ChannelSet
    rasa: RasaClient

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = make_engine(settings.database_url)
        factory = session_factory(engine)
        return cls(
            settings=settings,
            engine=engine,
            factory=factory,
            channels=ChannelSet(settings, factory),
            rasa=RasaClient(settings.rasa_url, settings.rasa_token, settings.rasa_timeout_seconds),
        )

    async def aclose(self) -> None:
        await self.channels.aclose()
        await self.rasa.aclose()
        self.engine.dispose()
