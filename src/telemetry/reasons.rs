//! Why an inbound webhook was refused, as a bounded label value for
//! `plazo_webhook_rejections_total`.

use crate::inbound::standard_webhooks::VerifyError;
use crate::inbound::twilio::TwilioSignatureError;
use crate::inbound::whatsapp::WhatsAppSignatureError;
use crate::payments::mercadopago::MercadoPagoSignatureError;
use crate::payments::stripe::StripeSignatureError;

/// Missing signature header.
pub const MISSING_SIGNATURE: &str = "missing_signature";
/// A signature that does not match (wrong secret, altered body).
pub const BAD_SIGNATURE: &str = "bad_signature";
/// A signature timestamp outside the tolerance (replay, or a skewed clock).
pub const STALE_TIMESTAMP: &str = "stale_timestamp";
/// A header or body that cannot be read.
pub const MALFORMED: &str = "malformed";
/// The endpoint's secret is not configured (answered 503).
pub const NOT_CONFIGURED: &str = "not_configured";

/// A verification error that names why a webhook was refused.
pub trait RejectReason {
    /// One of the reason label values of this module.
    fn reason(&self) -> &'static str;
}

impl RejectReason for VerifyError {
    fn reason(&self) -> &'static str {
        match self {
            VerifyError::MissingHeader(_) => MISSING_SIGNATURE,
            VerifyError::BadTimestamp(_) => MALFORMED,
            VerifyError::TooOld { .. } | VerifyError::TooNew { .. } => STALE_TIMESTAMP,
            VerifyError::NoMatch => BAD_SIGNATURE,
            VerifyError::BadSecret(_) => NOT_CONFIGURED,
        }
    }
}

impl RejectReason for StripeSignatureError {
    fn reason(&self) -> &'static str {
        match self {
            StripeSignatureError::NoSecret => NOT_CONFIGURED,
            StripeSignatureError::MissingHeader => MISSING_SIGNATURE,
            StripeSignatureError::MalformedHeader(_) | StripeSignatureError::NoV1Signatures => {
                MALFORMED
            }
            StripeSignatureError::Mismatch { .. } => BAD_SIGNATURE,
            StripeSignatureError::TooOld { .. } | StripeSignatureError::TooFarInFuture { .. } => {
                STALE_TIMESTAMP
            }
        }
    }
}

impl RejectReason for MercadoPagoSignatureError {
    fn reason(&self) -> &'static str {
        match self {
            MercadoPagoSignatureError::EmptySecret => NOT_CONFIGURED,
            MercadoPagoSignatureError::MissingHeader => MISSING_SIGNATURE,
            MercadoPagoSignatureError::Malformed(_) => MALFORMED,
            MercadoPagoSignatureError::Mismatch => BAD_SIGNATURE,
            MercadoPagoSignatureError::Stale { .. } => STALE_TIMESTAMP,
        }
    }
}

impl RejectReason for TwilioSignatureError {
    fn reason(&self) -> &'static str {
        match self {
            TwilioSignatureError::NoToken => NOT_CONFIGURED,
            TwilioSignatureError::MissingHeader => MISSING_SIGNATURE,
            TwilioSignatureError::Mismatch | TwilioSignatureError::BodyHashMismatch => {
                BAD_SIGNATURE
            }
            TwilioSignatureError::MissingBodyHash => MISSING_SIGNATURE,
        }
    }
}

impl RejectReason for WhatsAppSignatureError {
    fn reason(&self) -> &'static str {
        match self {
            WhatsAppSignatureError::EmptySecret => NOT_CONFIGURED,
            WhatsAppSignatureError::MissingHeader => MISSING_SIGNATURE,
            WhatsAppSignatureError::Malformed(_) => MALFORMED,
            WhatsAppSignatureError::Mismatch => BAD_SIGNATURE,
        }
    }
}
