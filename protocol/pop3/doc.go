// Package pop3 holds the pure parts of POP3: the command-line parser, the
// reply type with its response codes, and the arithmetic of messages as
// they go over the wire (sizes, TOP lengths, unique-ids). Nothing here
// touches a connection, so each part can be fuzzed alone; the state machine
// is in protocol/pop3/server.
//
// RFCs:
//   - RFC 1939 (POP3): commands, message numbers, scan listings, byte-stuffing
//     (3), the size of a message with CRLF line ends (11), TOP and UIDL (7).
//   - RFC 2449 (POP3 extensions): CAPA, the 255-octet command line (4),
//     RESP-CODES and the IN-USE and LOGIN-DELAY codes (8).
//   - RFC 3206 (POP3 response codes): SYS/TEMP, SYS/PERM and AUTH.
//   - RFC 2595 (STLS) and RFC 5034 (AUTH) for the verbs this parser knows.
package pop3
