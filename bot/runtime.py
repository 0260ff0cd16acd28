"""What a running process shares: settings, the session factory, channels and Rasa."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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
    closers: list[Callable[[], None]] = field(default_factory=list)
    """Called by ``aclose``: what the process started for this runtime (a dispatcher's
    judge process)."""

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
        try:
            await self.channels.aclose()
            await self.rasa.aclose()
        finally:
            for close in reversed(self.closers):
                close()
            self.closers.clear()
            self.engine.dispose()
