//! The fault-injecting TCP proxy (being written for the resilience suite).
