"""ncs agent: capture, decode, per-remote-IP statistics and the stats file format.

Kept import-light on purpose: report and coalesce import the stats file format
from here without loading libpcap or numpy.
"""

__version__ = "1.0.0"
