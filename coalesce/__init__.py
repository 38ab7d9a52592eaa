"""ncs.coalesce: fetch stats files from many hosts over SSH and merge them."""
