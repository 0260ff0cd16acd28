"""The local Twilio server (``channels.twilio_local.LocalTwilio``) as a process of its
own for the benchmark. Run: ``python -m bot.bench.conversation_twilio --port P``.
"""

from __future__ import annotations

import argparse

import uvicorn

from channels.twilio_local import LocalTwilio


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--account-sid", required=True)
    parser.add_argument("--auth-token", required=True)
    parser.add_argument("--no-callbacks", action="store_true")
    parser.add_argument("--callback-delay", type=float, default=1.0)
    args = parser.parse_args(argv)
    fake = LocalTwilio(
        args.account_sid,
        args.auth_token,
        callbacks=not args.no_callbacks,
        callback_delay=args.callback_delay,
    )
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
