"""The test harness: real servers on loopback, started and stopped by the run itself.

`postgres` a throwaway PostgreSQL server; `smtp` scriptable aiosmtpd and Postfix's smtp-sink and
smtp-source; `postfix` a private Postfix instance as a real relay (its own DSNs); `dovecot` a private
IMAP server; `processes` `newsletter serve` in a child process; `ports` free loopback ports. Tests and the benchmarks import these;
nothing in the product does (an import-linter contract in `pyproject.toml` says so, and CI checks it).
"""
