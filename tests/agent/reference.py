"""The update rules of DESIGN section 2, written as literally as possible, one packet at a time.

This is the oracle the agent's table is checked against; it shares no code
with agent/table.py.
"""

from __future__ import annotations


class ReferenceTable:
    def __init__(self, start: int) -> None:
        self.start = start
        self.rec: dict[int, dict] = {}
        self.rate = 0.0
        self.bw = 0.0
        self.ra = 0
        self.ba = 0
        self.next = start + 300
        self.last_fold = start

    def packet(self, now: int, key: int, length: int) -> None:
        # global rates
        if now < self.next or (self.rate < 1 and self.ra < 5):
            self.ra += 1
            self.ba += length
        else:
            d = max(1, now - self.start) if self.rate < 1 else 3600 + now - self.last_fold
            m = 3600 / d
            self.rate = (self.rate + self.ra) * m
            self.bw = (self.bw + self.ba) * m
            self.ra, self.ba, self.next, self.last_fold = 1, length, now + 60, now
        # the record
        x = self.rec.get(key)
        if x is None:
            self.rec[key] = dict(B=length, C=1, E=now, S=self.start, R=0.0, W=0.0, T=0, N=[])
            return
        if now < x["E"] + 300 or (x["E"] == x["S"] and x["C"] < 5):
            x["B"] += length
            x["C"] += 1
        else:
            if x["E"] == x["S"]:
                m = 3600 / (now - x["S"])
            else:
                m = 3600 / (3600 + now - x["E"])
            x["R"] = (x["R"] + x["C"]) * m
            x["W"] = (x["W"] + x["B"]) * m
            x["E"] = now
            x["B"] = length
            x["C"] = 1
