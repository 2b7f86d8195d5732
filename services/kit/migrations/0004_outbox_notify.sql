-- Wakes the outbox relay when a transaction that wrote events commits, instead of at its next
-- poll: Postgres delivers a NOTIFY only on commit (never for a rolled-back transaction), and
-- identical ones of one transaction once. The relay still polls, for wakes lost while its
-- listening connection was down.
CREATE OR REPLACE FUNCTION faultline_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('faultline_outbox', '');
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION faultline_outbox_notify();
