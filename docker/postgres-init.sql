-- Dagster's own storage lives in its own database beside the sales warehouse.
CREATE DATABASE dagster;
