"""ID-Mapping (全域用户关联): one customer behind many ids."""
