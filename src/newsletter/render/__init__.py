"""Issue -> Edition: the email's HTML and plain text, and the checks run before sending."""
