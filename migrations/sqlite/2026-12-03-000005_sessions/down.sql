DROP TABLE login_events;
DROP TABLE sessions;
