package message_test

import (
	"fmt"

	"posthorn/mailbox/message"
)

// The store runs ParseBlob once per message (mailbox.Options.Parse); FETCH
// and SEARCH load the blob and answer from it and the raw bytes.
func Example() {
	raw := []byte("From: Ann <ann@example.com>\r\n" +
		"Subject: =?utf-8?q?caf=C3=A9?=\r\n" +
		"Content-Type: multipart/mixed; boundary=x\r\n" +
		"\r\n" +
		"--x\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"Hello\r\n" +
		"--x\r\n" +
		"Content-Type: application/octet-stream\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"\r\n" +
		"AAEC\r\n" +
		"--x--\r\n")
	blob := message.ParseBlob(raw) // at delivery

	p := message.Load(blob, raw) // at FETCH
	fmt.Printf("BODY %s\n", p.BodyStructure(false))
	fmt.Printf("ENVELOPE %s\n", p.Envelope())
	mime, _ := p.Section(raw, "1.MIME")
	fmt.Printf("BODY[1.MIME] %q\n", mime)
	att, _ := p.Lookup([]int{2})
	bin, _ := att.Decoded(raw)
	fmt.Printf("BINARY[2] %x\n", bin)
	subject := p.HeaderValue(raw, "Subject")[0]
	fmt.Println("SEARCH SUBJECT CAFÉ:", message.ContainsFold([]byte(subject), []byte("CAFÉ")))
	fmt.Println("SEARCH BODY hello:", message.ContainsFold(p.BodyText(raw, 0), []byte("hello")))
	// Output:
	// BODY (("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 5 0)("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 4) "MIXED")
	// ENVELOPE (NIL "=?utf-8?q?caf=C3=A9?=" (("Ann" NIL "ann" "example.com")) (("Ann" NIL "ann" "example.com")) (("Ann" NIL "ann" "example.com")) NIL NIL NIL NIL NIL)
	// BODY[1.MIME] "Content-Type: text/plain; charset=utf-8\r\n\r\n"
	// BINARY[2] 000102
	// SEARCH SUBJECT CAFÉ: true
	// SEARCH BODY hello: true
}
