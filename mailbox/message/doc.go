// Package message parses RFC 5322 / MIME messages once, at delivery, into
// what the IMAP server needs on every FETCH and SEARCH without parsing
// again: the MIME tree with the byte ranges of every part, each part's MIME
// fields, and the envelope of every message in it.
//
// # Flow
//
//	delivery / APPEND:  mailbox.Options.Parse = message.ParseBlob
//	                    (Parse, then Encode; the store keeps the blob)
//	FETCH / SEARCH:     p := message.Load(blob, raw)   // Decode, or Parse if unreadable
//	                    p.BodyStructure(true)            // BODYSTRUCTURE
//	                    p.BodyStructure(false)           // BODY
//	                    p.Envelope()                     // ENVELOPE
//	                    p.Section(raw, "1.2.MIME")       // BODY[1.2.MIME], a slice of raw
//	                    q, _ := p.Lookup([]int{2}); q.Decoded(raw) // BINARY[2]
//	                    p.HeaderValue(raw, "Subject"), p.BodyText(raw, 0),
//	                    message.ContainsFold(text, key)  // SEARCH
//
// # Decisions
//
//   - Sizes and offsets are of the raw message as stored. Lines may end in
//     CRLF or a bare LF; both are line breaks when parsing. Sizes count the
//     octets a section fetch returns, so BODYSTRUCTURE and BODY[...] agree
//     whatever the line ends (servers that store LF, like Dovecot, report
//     CRLF sizes; storing CRLF at APPEND makes both the same).
//   - body-fld-lines is the number of LF octets in the body, as Dovecot.
//   - Type, subtype, encoding, parameter names and disposition type are
//     rendered upper case; see render.go.
//   - RFC 2231 parameters are joined and decoded to UTF-8 as RFC 9051 7.5.2
//     asks; a parameter that had a charset is named "name*".
//   - ENVELOPE strings are raw (unfolded): encoded-words are not decoded
//     (RFC 9051 7.5.2). Address names lose RFC 5322 quoting. A missing
//     domain is "" (Dovecot writes "MISSING_DOMAIN"). An absent or empty
//     field is NIL.
//   - A part that cannot be expanded is described so that the grammar
//     holds: a multipart without boundary or without body parts, and
//     multiparts and messages beyond MaxDepth or MaxParts, as text/plain;
//     a message/rfc822 in base64 or quoted-printable (RFC 2046 5.2.1
//     forbids it) as application/octet-stream.
//   - Search text is decoded at search time, not stored; see search.go.
//   - Limits (MaxDepth, MaxParts, MaxHeaderParse, MaxAddresses) keep Parse
//     linear in the message size times at most MaxDepth.
//
// RFCs: 5322 (message format, addresses), 2045 (MIME header fields,
// Content-Transfer-Encoding), 2046 (media types, multipart boundaries,
// message/rfc822), 2047 (encoded-words), 2231 (parameter continuations and
// charsets), 2183 (Content-Disposition), 3282 (Content-Language), 2557
// (Content-Location), 6532 (UTF-8 headers, message/global), 9051 (IMAP4rev2
// ENVELOPE, BODY, BODYSTRUCTURE, sections, SEARCH), 3516 (BINARY).
package message
