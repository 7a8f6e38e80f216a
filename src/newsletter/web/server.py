"""Running the subscriber pages: waitress in production, Flask's debug server only when asked.

waitress is a pure-Python, multi-threaded production WSGI server: no C compiler, no separate process
manager, the same on every platform, and it buffers slow clients (phones on poor signal) away from
the app's threads. Several `newsletter serve` processes can share one database: rate limits and
everything else live there.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from newsletter.errors import UserError
from newsletter.settings import DEFAULT_SECRET_KEY, Settings

if TYPE_CHECKING:
    from flask import Flask

DEFAULT_KEY_REFUSED = (
    "secret_key is still the default, so anyone could make links to members' pages: set secret_key in "
    "newsletter.toml or NEWSLETTER_SECRET_KEY to a long random value (for example the output of "
    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`), or use --debug to try things out"
)


def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    debug: bool = False,
    threads: int = 8,
    proxies: int = 0,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve until stopped (Ctrl-C or SIGTERM). Refuses the default secret key unless `debug`."""
    if settings.secret_key == DEFAULT_SECRET_KEY and not debug:
        raise UserError(DEFAULT_KEY_REFUSED)
    from newsletter.audience.store import Store
    from newsletter.web.app import close_app, create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Half the threads at most wait on the relay's answer: the others serve every other page meanwhile.
    app = create_app(settings, store=Store.open(settings), proxies=proxies, senders=max(1, threads // 2))
    try:
        if debug:
            announce(f"Debug server (never for production) on http://{host}:{port}/subscribe")
            app.run(host=host, port=port, debug=True, use_reloader=False)
        else:
            _run_waitress(app, host, port, threads, proxies, announce)
    finally:
        close_app(app)


def _run_waitress(
    app: Flask, host: str, port: int, threads: int, proxies: int, announce: Callable[[str], None]
) -> None:
    import waitress

    server = waitress.create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="newsletter",
        # The app's ProxyFix (`create_app(proxies=N)`) is the one place proxy headers are trusted, the
        # same under any WSGI server. waitress would otherwise delete X-Forwarded-For before the app
        # sees it (it trusts no proxy of its own), and every visitor would be the proxy's address.
        # With no proxies it may delete them: nothing would read them anyway.
        clear_untrusted_proxy_headers=proxies == 0,
    )
    announce(
        f"Serving the subscriber pages on http://{host}:{server.effective_port}/subscribe (Ctrl-C stops)"
    )
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop: finish like Ctrl-C
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
