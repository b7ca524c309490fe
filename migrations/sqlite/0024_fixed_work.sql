-- Fixed work: a scenario that made a set number of requests and ended
-- (NULL: it ran for the run's duration). Under Valgrind a run measures
-- each scenario twice, N and 2N requests, and takes the difference: the
-- first of the pair only gives the second its figures.
ALTER TABLE scenarios ADD COLUMN requests BIGINT;
