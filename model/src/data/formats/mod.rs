//! Readers and writers of each dataset's on-disk format.

pub mod dior;
pub mod dota;
pub mod loveda;
pub mod millionaid;
pub mod potsdam;
pub mod xml;
