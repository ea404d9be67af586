//! Prio3 `SumVec` (VDAF-08, prio 0.16.8): verify a report's input shares
//! as both aggregators would, in one process, and sum the output shares.
//!
//! In one process this checks validity (every entry in `[0, 2^bits)`: a
//! malformed or dishonest report is refused, never summed) but it is not
//! private against whoever runs it: it holds both shares. Privacy against
//! the servers needs two operators who do not collude, which is what a DAP
//! deployment (Janus, Divvi Up) is.

use prio::codec::{Encode, ParameterizedDecode};
use prio::field::Field128;
use prio::vdaf::prio3::{Prio3InputShare, Prio3PublicShare, Prio3SumVec};
use prio::vdaf::{Aggregatable, AggregateShare, Aggregator, Client, Collector, PrepareTransition};

use crate::error::{Code, Error, Result};
use crate::measure::Spec;

/// Bytes of a report id (DAP's nonce).
pub const NONCE_BYTES: usize = 16;
/// Bytes of the verify key.
pub const VERIFY_KEY_BYTES: usize = 16;

/// The VDAF of a specification: `Prio3SumVec` with 2 aggregators and the
/// spec's bits, length and chunk length.
pub fn vdaf(spec: &Spec) -> Result<Prio3SumVec> {
    Prio3SumVec::new_sum_vec(2, spec.bits(), spec.len(), spec.chunk_length())
        .map_err(|e| Error::new(Code::InvalidSpec, format!("Prio3SumVec: {e}")))
}

/// Shard a measurement (what a device does): the public share and the two
/// input shares, encoded. For tests and simulations.
pub fn shard(
    vdaf: &Prio3SumVec,
    entries: &[u64],
    nonce: &[u8; NONCE_BYTES],
) -> Result<(Vec<u8>, [Vec<u8>; 2])> {
    let m: Vec<u128> = entries.iter().map(|x| *x as u128).collect();
    let (public, inputs) = vdaf
        .shard(&m, nonce)
        .map_err(|e| Error::new(Code::OutOfRange, format!("shard: {e}")))?;
    let enc = |x: &dyn Encode| {
        x.get_encoded()
            .map_err(|e| Error::new(Code::BadEncoding, format!("encode: {e}")))
    };
    Ok((enc(&public)?, [enc(&inputs[0])?, enc(&inputs[1])?]))
}

/// Both aggregators' running sums of verified output shares, for one bucket.
#[derive(Debug, Clone)]
pub struct Shares {
    shares: [AggregateShare<Field128>; 2],
    count: usize,
}

/// Verifies reports and keeps the aggregators' shares.
#[derive(Debug)]
pub struct Verifier {
    vdaf: Prio3SumVec,
    key: [u8; VERIFY_KEY_BYTES],
}

impl Verifier {
    /// A verifier for `spec` with a verify key. The key must be unknown to
    /// clients (draw it from the OS per run): a client that knows it could
    /// forge proofs of invalid measurements.
    pub fn new(spec: &Spec, key: [u8; VERIFY_KEY_BYTES]) -> Result<Verifier> {
        Ok(Verifier {
            vdaf: vdaf(spec)?,
            key,
        })
    }

    /// Empty shares.
    pub fn empty(&self) -> Shares {
        let zero = || {
            self.vdaf
                .aggregate(&(), std::iter::empty())
                .expect("aggregating nothing cannot fail")
        };
        Shares {
            shares: [zero(), zero()],
            count: 0,
        }
    }

    /// Run both aggregators' preparation on one report and, when it
    /// verifies, add the output shares to `into`. [`Code::BadEncoding`]
    /// when a share does not decode, [`Code::VerifyFailed`] when the
    /// proof does not check; `into` is then unchanged.
    pub fn add(
        &self,
        into: &mut Shares,
        nonce: &[u8; NONCE_BYTES],
        public: &[u8],
        inputs: [&[u8]; 2],
    ) -> Result<()> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            Error::new(Code::BadEncoding, format!("{what} does not decode: {e}"))
        };
        let failed = |e: &dyn std::fmt::Display| {
            Error::new(
                Code::VerifyFailed,
                format!("the report does not verify: {e}"),
            )
        };
        let public = Prio3PublicShare::get_decoded_with_param(&self.vdaf, public)
            .map_err(|e| bad("publicShare", &e))?;
        let mut states = Vec::with_capacity(2);
        let mut prep = Vec::with_capacity(2);
        for (id, bytes) in inputs.iter().enumerate() {
            let name = if id == 0 {
                "leaderShare"
            } else {
                "helperShare"
            };
            let input = Prio3InputShare::get_decoded_with_param(&(&self.vdaf, id), bytes)
                .map_err(|e| bad(name, &e))?;
            let (state, share) = self
                .vdaf
                .prepare_init(&self.key, id, &(), nonce, &public, &input)
                .map_err(|e| failed(&e))?;
            states.push(state);
            prep.push(share);
        }
        let msg = self
            .vdaf
            .prepare_shares_to_prepare_message(&(), prep)
            .map_err(|e| failed(&e))?;
        let mut outs = Vec::with_capacity(2);
        for state in states {
            match self.vdaf.prepare_next(state, msg.clone()) {
                Ok(PrepareTransition::Finish(out)) => outs.push(out),
                Ok(_) => return Err(failed(&"preparation did not finish in one round")),
                Err(e) => return Err(failed(&e)),
            }
        }
        for (share, out) in into.shares.iter_mut().zip(&outs) {
            share
                .accumulate(out)
                .map_err(|e| Error::new(Code::VerifyFailed, format!("accumulate: {e}")))?;
        }
        into.count += 1;
        Ok(())
    }

    /// The collector's step: combine both aggregate shares into the sums.
    pub fn unshard(&self, shares: Shares) -> Result<Vec<u128>> {
        self.vdaf
            .unshard(&(), shares.shares, shares.count)
            .map_err(|e| Error::new(Code::VerifyFailed, format!("unshard: {e}")))
    }
}
