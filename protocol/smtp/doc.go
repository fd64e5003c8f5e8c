// Package smtp holds the pure parts of SMTP: reply codes with their RFC 3463
// enhanced status codes, command-line parsing, reverse- and forward-path
// parsing (RFC 5321 4.1.2, with SMTPUTF8 addresses per RFC 6531 3.3) and ESMTP
// parameter parsing (RFC 5321 4.1.2, RFC 1870, RFC 6152, RFC 3461, RFC 6531).
//
// Nothing here touches a connection: every function takes bytes or strings,
// so each parser can be fuzzed alone.
//
// Errors are Reply values carrying the reply to send; their texts never echo
// more of the input than a parameter keyword.
//
// RFCs: 5321, 3463, 2034, 1870, 6152, 3030, 3461, 4954 (AUTH=), 6531, 6532
// (UTF8-non-ascii), 6533 (the "utf-8" ORCPT type).
package smtp
