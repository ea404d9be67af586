//! The sync protocol (see the module above).

use crate::prelude::*;
