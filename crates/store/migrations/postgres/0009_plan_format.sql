-- The format a plan's items were stored in. Format 1: engine ops whose
-- bodies are the records of WIT syncbridge:plugin@0.1 as JSON. A version
-- that changes the stored shape raises it; plans of another format are
-- refused by name, never misread.
ALTER TABLE plans ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
