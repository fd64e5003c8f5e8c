package smtp

// Reply codes of RFC 5321 4.2.2, named by meaning.
const (
	CodeSystemStatus   = 211
	CodeHelp           = 214
	CodeReady          = 220 // <domain> Service ready
	CodeClosing        = 221 // Service closing transmission channel
	CodeAuthOK         = 235 // RFC 4954 6
	CodeOK             = 250
	CodeCannotVRFY     = 252
	CodeAuthContinue   = 334 // RFC 4954 4
	CodeStartData      = 354
	CodeUnavailable    = 421 // Service not available, closing transmission channel
	CodeMailboxBusy    = 450
	CodeLocalError     = 451
	CodeInsufficient   = 452
	CodeTempAuthFail   = 454 // RFC 4954 6
	CodeParamsTemp     = 455 // RFC 5321 4.2.2
	CodeSyntax         = 500
	CodeArgSyntax      = 501
	CodeNotImplemented = 502
	CodeBadSequence    = 503
	CodeParamNotImpl   = 504
	CodeAuthRequired   = 530 // RFC 4954 6
	CodeAuthFailed     = 535 // RFC 4954 6
	CodeMailboxUnavail = 550
	CodeUserNotLocal   = 551
	CodeExceededStore  = 552
	CodeBadMailboxName = 553
	CodeFailed         = 554
	CodeParamsUnknown  = 555
)

// Enhanced status codes of RFC 3463 used by Posthorn, named "class.subject.detail"
// without the class, which follows the reply code (RFC 3463 2, RFC 2034 4).
// Use Enh(code, detail) to build "5.1.1" from 550 and "1.1".
const (
	EnhOther                 = "0.0"  // X.0.0 Other undefined status
	EnhBadDestMailbox        = "1.1"  // X.1.1 Bad destination mailbox address
	EnhBadDestSystem         = "1.2"  // X.1.2 Bad destination system address
	EnhBadDestSyntax         = "1.3"  // X.1.3 Bad destination mailbox address syntax
	EnhBadSenderMailbox      = "1.7"  // X.1.7 Bad sender's mailbox address syntax
	EnhBadSenderSystem       = "1.8"  // X.1.8 Bad sender's system address
	EnhNullMX                = "1.10" // X.1.10 Recipient address has null MX (RFC 7505 4.2)
	EnhDestValid             = "1.5"  // X.1.5 Destination address valid
	EnhSenderValid           = "1.0"  // X.1.0 Other address status (used for MAIL OK)
	EnhMailboxFull           = "2.2"  // X.2.2 Mailbox full
	EnhMsgTooBig             = "3.4"  // X.3.4 Message too big for system
	EnhSystemFull            = "3.1"  // X.3.1 Mail system full
	EnhSystemOther           = "3.0"  // X.3.0 Other or undefined mail system status
	EnhSystemNotAccept       = "3.2"  // X.3.2 System not accepting network messages
	EnhNetOther              = "4.0"  // X.4.0 Other network or routing status
	EnhNoAnswer              = "4.1"  // X.4.1 No answer from host
	EnhBadConnection         = "4.2"  // X.4.2 Bad connection
	EnhRoutingFailure        = "4.4"  // X.4.4 Unable to route
	EnhLoop                  = "4.6"  // X.4.6 Routing loop detected
	EnhDeliveryTime          = "4.7"  // X.4.7 Delivery time expired
	EnhProtoOther            = "5.0"  // X.5.0 Other or undefined protocol status
	EnhInvalidCommand        = "5.1"  // X.5.1 Invalid command
	EnhSyntaxError           = "5.2"  // X.5.2 Syntax error
	EnhTooManyRcpts          = "5.3"  // X.5.3 Too many recipients
	EnhInvalidArgs           = "5.4"  // X.5.4 Invalid command arguments
	EnhContentOther          = "6.0"  // X.6.0 Other or undefined media error
	EnhConversionUnsupported = "6.3"  // X.6.3 Conversion required but not supported
	EnhNonASCIIAddr          = "6.7"  // X.6.7 Non-ASCII addresses not permitted (RFC 6531 3.7.4)
	EnhUTF8Header            = "6.9"  // X.6.9 UTF-8 header message cannot be transferred (RFC 6531 3.7.5)
	EnhSecurityOther         = "7.0"  // X.7.0 Other or undefined security status
	EnhDeliveryNotAuth       = "7.1"  // X.7.1 Delivery not authorized, message refused
	EnhAuthCredentials       = "7.8"  // X.7.8 Authentication credentials invalid (RFC 4954 6)
	EnhEncryptionNeeded      = "7.11" // X.7.11 Encryption required (RFC 5248)
)
