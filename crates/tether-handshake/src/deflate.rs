//! permessage-deflate (RFC 7692) in the opening handshake: the `Sec-WebSocket-Extensions`
//! elements that name it, handed to `tether-deflate` for the offer's and answer's checks.

use tether_deflate::PERMESSAGE_DEFLATE;

use crate::extension::Extension;

/// The parameter lists of every `permessage-deflate` element of `extensions`, in order, in
/// the shape `DeflateConfig::accept_offer` and `DeflateConfig::accept_response` take.
pub(crate) fn deflate_elements(
    extensions: &[Extension],
) -> impl Iterator<Item = impl Iterator<Item = (&str, Option<&str>)>> {
    extensions
        .iter()
        .filter(|e| e.name().eq_ignore_ascii_case(PERMESSAGE_DEFLATE))
        .map(|e| e.params().iter().map(|p| (p.name(), p.value())))
}
