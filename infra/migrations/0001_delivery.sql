-- Delivery tables owned by the worker runtime: inbox, outbox, dead letters.

-- One row per event a consumer has processed, written in the same transaction as the
-- state change it caused: a redelivered event finds its row and has no second effect.
CREATE TABLE inbox (
    consumer      text        NOT NULL,
    event_id      uuid        NOT NULL,
    topic         text        NOT NULL,
    kafka_partition integer   NOT NULL,
    kafka_offset  bigint      NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Events a step decided to publish, stored with the state change. Published after the
-- commit; re-published when the causing event is redelivered (the process died between
-- commit and publish). Output event ids are derived from the cause, so re-publishing is
-- recognised downstream.
CREATE TABLE outbox (
    outbox_id      bigserial   PRIMARY KEY,
    producer       text        NOT NULL,
    cause_event_id uuid,
    event_id       uuid        NOT NULL UNIQUE,
    topic          text        NOT NULL,
    message_key    text        NOT NULL,
    message_value  bytea       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz
);
CREATE INDEX outbox_by_cause ON outbox (producer, cause_event_id);
CREATE INDEX outbox_unpublished ON outbox (created_at) WHERE published_at IS NULL;

-- The operator's index of dead letters (the messages also go to the <topic>.dlq topic).
CREATE TABLE dead_letters (
    dead_letter_id   bigserial   PRIMARY KEY,
    consumer         text        NOT NULL,
    source_topic     text        NOT NULL,
    source_partition integer     NOT NULL,
    source_offset    bigint      NOT NULL,
    message_key      bytea,
    message_value    bytea,
    headers          jsonb       NOT NULL DEFAULT '[]',
    event_id         uuid,
    order_id         text,
    reason_code      text        NOT NULL,
    detail           text        NOT NULL,
    attempts         integer     NOT NULL CHECK (attempts >= 1),
    failed_at        timestamptz NOT NULL DEFAULT now(),
    replayed_at      timestamptz,
    replay_count     integer     NOT NULL DEFAULT 0 CHECK (replay_count >= 0),
    UNIQUE (consumer, source_topic, source_partition, source_offset)
);
CREATE INDEX dead_letters_open ON dead_letters (failed_at) WHERE replayed_at IS NULL;
