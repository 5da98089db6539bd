-- The event type registry: the types publishers may send, each with a JSON Schema
-- (draft 2020-12) for its events' data and an example of that data. Platform keys add,
-- change and archive them through /api/event-types; webhook.test is built into the code and
-- never stored here. schema and example are json, not jsonb: they are kept as they were
-- sent (member order included), since people read them.
CREATE TABLE event_types (
    -- What a name may be is eventtype.CheckName's rule, applied before a row is written.
    name        text PRIMARY KEY CHECK (name <> ''),
    description text        NOT NULL DEFAULT '',
    schema      json        NOT NULL,
    example     json        NOT NULL,
    archived_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The survey types surveyhooks has always delivered, as defaults an operator may change.
-- Their schemas type the documented members without requiring any at the top level, so
-- that publishers written against the earlier, unchecked catalog keep working; a PATCH
-- makes members required where a platform wants that.
INSERT INTO event_types (name, description, schema, example) VALUES
('survey.response.completed', 'A respondent completed a survey.',
 '{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"survey":{"$ref":"#/$defs/survey"},"response":{"type":"object","required":["id"],"properties":{"id":{"type":"string","minLength":1},"answers":{"$ref":"#/$defs/answers"},"completed_at":{"type":"string","format":"date-time"}}}},"$defs":{"survey":{"type":"object","required":["id"],"properties":{"id":{"type":"string","minLength":1},"title":{"type":"string"}}},"answers":{"type":"array","items":{"type":"object","properties":{"question_id":{"type":"string"},"question":{"type":"string"}}}}}}',
 '{"survey":{"id":"srv_123","title":"Patient satisfaction"},"response":{"id":"rsp_456","answers":[{"question_id":"q1","question":"How satisfied are you?","answer":"Very satisfied"},{"question_id":"q2","question":"Would you recommend us?","answer":9}],"completed_at":"2024-05-01T12:30:00Z"}}'),
('survey.response.updated', 'A completed survey response was changed.',
 '{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"survey":{"$ref":"#/$defs/survey"},"response":{"type":"object","required":["id"],"properties":{"id":{"type":"string","minLength":1},"answers":{"$ref":"#/$defs/answers"},"completed_at":{"type":"string","format":"date-time"},"updated_at":{"type":"string","format":"date-time"}}}},"$defs":{"survey":{"type":"object","required":["id"],"properties":{"id":{"type":"string","minLength":1},"title":{"type":"string"}}},"answers":{"type":"array","items":{"type":"object","properties":{"question_id":{"type":"string"},"question":{"type":"string"}}}}}}',
 '{"survey":{"id":"srv_123","title":"Patient satisfaction"},"response":{"id":"rsp_456","answers":[{"question_id":"q1","question":"How satisfied are you?","answer":"Satisfied"}],"completed_at":"2024-05-01T12:30:00Z","updated_at":"2024-05-02T08:00:00Z"}}'),
('survey.response.disqualified', 'A respondent was screened out of a survey.',
 '{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"survey":{"$ref":"#/$defs/survey"},"response":{"type":"object","required":["id"],"properties":{"id":{"type":"string","minLength":1},"answers":{"$ref":"#/$defs/answers"},"disqualified_at":{"type":"string","format":"date-time"}}}},"$defs":{"survey":{"type":"object","required":["id"],"properties":{"id":{"type":"string","minLength":1},"title":{"type":"string"}}},"answers":{"type":"array","items":{"type":"object","properties":{"question_id":{"type":"string"},"question":{"type":"string"}}}}}}',
 '{"survey":{"id":"srv_123","title":"Patient satisfaction"},"response":{"id":"rsp_789","answers":[{"question_id":"q0","question":"Are you over 18?","answer":"No"}],"disqualified_at":"2024-05-01T12:31:00Z"}}'),
('form.submission.created', 'A form was submitted.',
 '{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"form":{"type":"object","required":["id"],"properties":{"id":{"type":"string","minLength":1},"title":{"type":"string"}}},"submission":{"type":"object","required":["id"],"properties":{"id":{"type":"string","minLength":1},"fields":{"type":"array","items":{"type":"object","properties":{"field_id":{"type":"string"},"label":{"type":"string"}}}},"submitted_at":{"type":"string","format":"date-time"}}}}}',
 '{"form":{"id":"frm_123","title":"Contact us"},"submission":{"id":"sub_456","fields":[{"field_id":"email","label":"Email","value":"ada@example.com"}],"submitted_at":"2024-05-01T12:30:00Z"}}');
