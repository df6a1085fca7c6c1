//! The host's integration tests, one binary: each module is one area, and
//! `common` holds the shared fixtures and scenarios.

mod api;
mod cli;
mod common;
mod config_schema;
mod connector_autotask;
mod connector_autotask_calendar;
mod connector_connectwise;
mod connector_connectwise_calendar;
mod connector_dynamics;
mod connector_ews;
mod connector_graph;
mod connector_graph_mailbox;
mod control;
mod engine_e2e;
mod engine_props;
mod exchange_diagnose;
mod exchange_profiles;
mod flow1;
mod flow2_connectwise;
mod flow2_e2e;
mod flow2_rules;
mod flow3;
mod flow3_mail;
mod http_capability;
mod install;
mod mailboxes;
mod mapper_flow2;
mod mapper_mailbox;
mod metrics;
mod notify;
mod sandbox;
mod serve_e2e;
mod store;
mod tls;
mod wit_versions;
