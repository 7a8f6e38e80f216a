"""Bounces and complaints: what the mail world sends back, taken in, classified and acted on.

`findings` is what every intake path produces; `classify` reads a returned message (RFC 3464 DSNs,
RFC 5965 ARF complaints, RFC 3834 auto-replies, and the rest through flufl.bounce); `scoring` holds
the rules (who is suppressed, who is only scored, what never counts against a member); `intake`
records findings against members and campaigns. `receive` (SMTP/LMTP), `mailbox` (Maildir, IMAP) and
`webhooks` (email providers) are the three ways in.
"""
