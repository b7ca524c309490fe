-- A finished scenario's chart overview is kept as data: each chart by its
-- number, no longer by the id of the element a page draws it in. The ones
-- kept before are dropped; each is drawn again from the samples when it is
-- next asked for, and kept anew when a scenario ends.
UPDATE scenarios SET overview = NULL;
