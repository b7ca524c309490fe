-- What /proc says of each sampled process beyond CPU and memory: threads
-- and open files at the tick; the percent of the interval its main thread
-- waited for a CPU; and, since the previous tick, its main thread's
-- context switches and the bytes it made storage read and write. Absent
-- (NULL) in samples taken before.
ALTER TABLE samples ADD COLUMN threads BIGINT;
ALTER TABLE samples ADD COLUMN fds BIGINT;
ALTER TABLE samples ADD COLUMN cpu_wait DOUBLE PRECISION;
ALTER TABLE samples ADD COLUMN voluntary_switches BIGINT;
ALTER TABLE samples ADD COLUMN involuntary_switches BIGINT;
ALTER TABLE samples ADD COLUMN read_bytes BIGINT;
ALTER TABLE samples ADD COLUMN write_bytes BIGINT;
