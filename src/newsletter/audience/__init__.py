"""Subscribers, lists, topics, segments, consent and suppressions: who gets what, provably."""
