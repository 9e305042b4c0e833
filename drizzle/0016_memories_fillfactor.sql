-- Room on each page of memories for updated rows (issue 14, eleventh pass). Recall stamps
-- last_recalled_at on the memories it used, in the background. A memory row is large (its vector
-- alone is 1.2 KB at 300 dimensions), so at the default fillfactor of 100 its page is full and every
-- stamp wrote the new row version on another page plus an entry in each of the table's indexes
-- (HNSW, GIN, B-tree). With 40 % of each page kept free the new version stays on its page as a
-- heap-only tuple — no index is written, as none indexes last_recalled_at — and the old one is
-- pruned in place. Embedded database, 180 memories stamped 50 at a time, 40 times: 11.2 → 2.7 ms a
-- statement (p50), and the table ended at 46 pages instead of 162 (scratch measurement, recorded in
-- docs/benchmarks.md). Pages written before this keep their old fill until they are rewritten.
ALTER TABLE "memories" SET (fillfactor = 60);
