-- Webhooks subscribed to registered types keep their patterns; only the registry goes.
DROP TABLE event_types;
