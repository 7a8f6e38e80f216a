"""The subscriber web pages: sign up, confirm, preferences, unsubscribe (RFC 8058) and my data.

`app.create_app(settings)` builds the Flask app; `newsletter serve` runs it under waitress. The pages
are a thin layer over `newsletter.audience.membership`.
"""
