"""ncs.report: group a stats file by prefix or domain and render it."""
