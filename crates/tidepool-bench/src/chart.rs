//! The SVG charts, which live in `tidepool-chart` so that `tidepool load`
//! draws the same ones.

pub use tidepool_chart::*;
