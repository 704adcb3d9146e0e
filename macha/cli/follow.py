"""The live journal follower's interface: the Celery send it is given (macha.monitor.collect.follow takes a
callback and knows no queue), and `python -m macha.cli.follow`, the follower on its own in the foreground."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable

from macha.config import Settings, load_settings
from macha.core.errors import MachaError
from macha.monitor.collect.follow import follow


def live_check_sender(settings: Settings) -> Callable[[str | None], None]:
    """Sends `check_host(reason=live)` for this host at the highest priority, reading ``journal_dir``."""
    from workers.app import PRIORITY_HIGHEST, check_pipeline, create_app

    celery = create_app(settings)

    def request_check(journal_dir: str | None) -> None:
        check_pipeline(celery, settings.hostname, "live", journal_dir=journal_dir).apply_async(
            priority=PRIORITY_HIGHEST)

    return request_check


def follow_and_send(settings: Settings, should_stop: Callable[[], bool]) -> int:
    """Follow this host's journal until ``should_stop``, sending a live check on each urgent line."""
    return follow(settings, should_stop, live_check_sender(settings))


def main() -> None:
    """`python -m macha.cli.follow`: the follower on its own, in the foreground."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    try:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        sys.exit(follow_and_send(load_settings(), stop.is_set))
    except MachaError as exc:
        print(f"macha follower: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
