-- What /proc says of each sampled process beyond CPU and memory: threads
-- and open files at the tick; the percent of the interval its main thread
-- waited for a CPU; and, since the previous tick, its main thread's
-- context switches and the bytes it made storage read and write. Absent
-- (NULL) in samples taken before.
ALTER TABLE samples ADD COLUMN threads INTEGER;
ALTER TABLE samples ADD COLUMN fds INTEGER;
ALTER TABLE samples ADD COLUMN cpu_wait REAL;
ALTER TABLE samples ADD COLUMN voluntary_switches INTEGER;
ALTER TABLE samples ADD COLUMN involuntary_switches INTEGER;
ALTER TABLE samples ADD COLUMN read_bytes INTEGER;
ALTER TABLE samples ADD COLUMN write_bytes INTEGER;
