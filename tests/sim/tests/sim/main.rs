//! The simulators' tests, one binary: a module per simulator, `common` shared.

mod autotask;
mod common;
mod connectwise;
mod connectwise_calendar;
mod dynamics;
mod ews;
mod graph;
mod misc;
mod shared_behaviour;
