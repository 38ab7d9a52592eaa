"""ncs.agent: the capture daemon (capture, decode, accounting, reverse DNS, dumps, verbs)."""
