"""Members' submissions: what they offer for the newsletter, and the editors' review of it into an issue."""
