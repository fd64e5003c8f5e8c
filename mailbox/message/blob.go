package message

import (
	"encoding/binary"
	"errors"
)

// The blob is the parsed tree as the store keeps it (mailbox.Options.Parse,
// bucket "parsed"): built once at delivery, decoded on every FETCH and
// SEARCH. Version 1, all integers unsigned varints (encoding/binary):
//
//	blob     = 0x01 part
//	part     = flags u8 (bit 0: envelope follows)
//	           HeaderStart | BodyStart-HeaderStart | End-BodyStart | Lines
//	           str Type | str Subtype | params | str ID | str Description |
//	           str Encoding | str MD5 | str Disposition | params |
//	           count *str (Content-Language) | str Location |
//	           [envelope] | count *part (children)
//	str      = length octets
//	params   = count *(str name | str value)
//	envelope = str Date | str Subject | 6 addrlist (From Sender Reply-To To
//	           Cc Bcc) | str In-Reply-To | str Message-ID
//	addrlist = count *(kind u8 | str Name | str Adl | str Mailbox | str Host)
//
// Offsets are deltas, so they are never negative and stay small. Decode
// checks every length and count against what is left, bounds depth and part
// count, and never panics (FuzzDecodeBlob); the offsets are not trusted
// later either (Part.Header and Body clamp them to the raw message).

const blobVersion = 1

// ErrBadBlob: Decode found a blob it cannot read (another version, or
// damaged). Load then parses the message again.
var ErrBadBlob = errors.New("message: bad parsed-message blob")

// maxBlobOffset bounds decoded offsets so that sums cannot overflow.
const maxBlobOffset = 1 << 40

// ParseBlob is Encode(Parse(raw)): the function to plug into
// mailbox.Options.Parse. It does not keep raw.
func ParseBlob(raw []byte) []byte { return Encode(Parse(raw)) }

// Load returns the tree for a stored message: Decode(blob), or, when the
// blob is missing or unreadable (older version, damage, a parser panic at
// delivery), Parse(raw).
func Load(blob, raw []byte) *Part {
	if p, err := Decode(blob); err == nil {
		return p
	}
	return Parse(raw)
}

// Encode serialises a tree (see the format above).
func Encode(p *Part) []byte {
	b := make([]byte, 0, 512)
	b = append(b, blobVersion)
	return appendPart(b, p)
}

func appendPart(b []byte, p *Part) []byte {
	var flags byte
	if p.Env != nil {
		flags |= 1
	}
	b = append(b, flags)
	b = appendUint(b, p.HeaderStart)
	b = appendUint(b, p.BodyStart-p.HeaderStart)
	b = appendUint(b, p.End-p.BodyStart)
	b = appendUint(b, p.Lines)
	for _, s := range [...]string{p.Type, p.Subtype} {
		b = appendStr(b, s)
	}
	b = appendParamList(b, p.Params)
	for _, s := range [...]string{p.ID, p.Description, p.Encoding, p.MD5, p.Disposition} {
		b = appendStr(b, s)
	}
	b = appendParamList(b, p.DispositionParams)
	b = binary.AppendUvarint(b, uint64(len(p.Language)))
	for _, l := range p.Language {
		b = appendStr(b, l)
	}
	b = appendStr(b, p.Location)
	if e := p.Env; e != nil {
		b = appendStr(b, e.Date)
		b = appendStr(b, e.Subject)
		for _, list := range [...][]Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
			b = binary.AppendUvarint(b, uint64(len(list)))
			for _, a := range list {
				b = append(b, byte(a.Kind))
				for _, s := range [...]string{a.Name, a.Adl, a.Mailbox, a.Host} {
					b = appendStr(b, s)
				}
			}
		}
		b = appendStr(b, e.InReplyTo)
		b = appendStr(b, e.MessageID)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Children)))
	for _, c := range p.Children {
		b = appendPart(b, c)
	}
	return b
}

// appendUint writes a non-negative int; a negative one (a hand-made tree
// with offsets out of order) is written as 0.
func appendUint(b []byte, n int) []byte {
	return binary.AppendUvarint(b, uint64(max(n, 0)))
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendParamList(b []byte, params []Param) []byte {
	b = binary.AppendUvarint(b, uint64(len(params)))
	for _, p := range params {
		b = appendStr(b, p.Name)
		b = appendStr(b, p.Value)
	}
	return b
}

// Decode reads a blob made by Encode.
func Decode(blob []byte) (*Part, error) {
	if len(blob) == 0 || blob[0] != blobVersion {
		return nil, ErrBadBlob
	}
	d := &blobDecoder{b: blob[1:]}
	p := d.part(0)
	if d.err != nil || len(d.b) != 0 {
		return nil, ErrBadBlob
	}
	return p, nil
}

type blobDecoder struct {
	b     []byte
	parts int
	err   error
}

func (d *blobDecoder) fail() { d.err = ErrBadBlob; d.b = nil }

func (d *blobDecoder) num(limit uint64) int {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	// Only minimal encodings, so a blob has one form (Encode(Decode(b)) == b).
	if n <= 0 || v > limit || (n > 1 && d.b[n-1] == 0) {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return int(v)
}

// count reads a count of items that take at least one octet each.
func (d *blobDecoder) count() int {
	n := d.num(maxBlobOffset)
	if n > len(d.b) {
		d.fail()
		return 0
	}
	return n
}

func (d *blobDecoder) octet() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *blobDecoder) str() string {
	n := d.count()
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *blobDecoder) params() []Param {
	n := d.count()
	var ps []Param
	for i := 0; i < n && d.err == nil; i++ {
		ps = append(ps, Param{Name: d.str(), Value: d.str()})
	}
	return ps
}

func (d *blobDecoder) addresses() []Address {
	n := d.count()
	var list []Address
	for i := 0; i < n && d.err == nil; i++ {
		kind := AddressKind(d.octet())
		if kind > GroupEnd {
			d.fail()
			return nil
		}
		list = append(list, Address{Kind: kind, Name: d.str(), Adl: d.str(), Mailbox: d.str(), Host: d.str()})
	}
	return list
}

func (d *blobDecoder) part(depth int) *Part {
	d.parts++
	if depth > MaxDepth || d.parts > 2*MaxParts {
		d.fail()
		return nil
	}
	flags := d.octet()
	if flags&^1 != 0 {
		d.fail()
		return nil
	}
	p := &Part{HeaderStart: d.num(maxBlobOffset)}
	p.BodyStart = p.HeaderStart + d.num(maxBlobOffset)
	p.End = p.BodyStart + d.num(maxBlobOffset)
	p.Lines = d.num(maxBlobOffset)
	p.Type, p.Subtype = d.str(), d.str()
	p.Params = d.params()
	p.ID, p.Description, p.Encoding, p.MD5, p.Disposition = d.str(), d.str(), d.str(), d.str(), d.str()
	p.DispositionParams = d.params()
	if n := d.count(); n > 0 {
		for i := 0; i < n && d.err == nil; i++ {
			p.Language = append(p.Language, d.str())
		}
	}
	p.Location = d.str()
	if flags&1 != 0 {
		e := &Envelope{Date: d.str(), Subject: d.str()}
		e.From, e.Sender, e.ReplyTo = d.addresses(), d.addresses(), d.addresses()
		e.To, e.Cc, e.Bcc = d.addresses(), d.addresses(), d.addresses()
		e.InReplyTo, e.MessageID = d.str(), d.str()
		p.Env = e
	}
	n := d.count()
	for i := 0; i < n && d.err == nil; i++ {
		p.Children = append(p.Children, d.part(depth+1))
	}
	if d.err != nil {
		return nil
	}
	return p
}
