"""ncs.stats: the stats record, the stats file format and the column table, shared by all three programs.

- `record`: the record's fields, declared once (`FIELDS`), and `Record`;
- `layout`: the file's text layout, from which the writers and the reader are built;
- `quoting`: Perl string quoting and hostile text made inert;
- `header`: the comment header lines;
- `addresses`: addresses as numbers, the one key scheme;
- `columns`: `StatsColumns`, the table in memory;
- `reader`, `parser`: reading files (fast path, and the general parser of every dialect);
- `writer`, `fastwriter`: writing files (record by record, and with numpy);
- `merge`: merging tables by the fields' merge rules;
- `errors`: `StatsFormatError`.

This package imports none of ncs.agent, ncs.report, ncs.coalesce, and never libpcap.
"""
