-- Names people gave to the transcript's speakers, as a JSON object {"A": "Ana"}; NULL = none.
ALTER TABLE jobs ADD COLUMN speakers TEXT;
-- The prompt template chosen for the job (a file name in the prompts folder, without `.md`);
-- NULL = the default PROMPT_PATH.
ALTER TABLE jobs ADD COLUMN template TEXT;
