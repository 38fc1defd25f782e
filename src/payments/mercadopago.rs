//! Mercado Pago notifications (filled in by the Mercado Pago work).
