-- Plan states: proposed | held (open) -> applying -> applied | failed | stale,
-- or open -> discarded. Every transition is one conditional UPDATE.
-- The apply-plan run that claimed the plan (open -> applying), and the open
-- status it had then, restored if that run cannot be recorded or is
-- cancelled before it starts.
ALTER TABLE plans ADD COLUMN apply_run TEXT;
ALTER TABLE plans ADD COLUMN claimed_from TEXT;
