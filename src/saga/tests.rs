//! Tests of the pure saga: given/when/then scenarios for every path of the process, and property
//! tests that run it against a simulated world answering its commands in every order.

mod compensation;
mod decisions;
mod human;
mod human_properties;
mod properties;
mod stale_inputs;
mod support;
mod world;
