DROP TABLE webhook_stats;
DROP TABLE webhook_health;
