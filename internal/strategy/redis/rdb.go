package redis

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// rdbKeys counts the keys of an RDB snapshot per database ("db0"), and those with a time to
// live, skipping over every value. It knows the value types of Redis up to 7.2 (RDB version
// 11) and module values; for anything else it returns errRDBUnknown.
func rdbKeys(r io.Reader) (keys, expiring map[string]int64, err error) {
	p := &rdbParser{r: bufio.NewReaderSize(r, 64<<10)}
	keys, expiring = map[string]int64{}, map[string]int64{}
	head := make([]byte, 9)
	if _, err := io.ReadFull(p.r, head); err != nil {
		return nil, nil, fmt.Errorf("reading the RDB header: %w", err)
	}
	if string(head[:5]) != "REDIS" {
		return nil, nil, fmt.Errorf("not an RDB file (no REDIS header)")
	}
	db, expires := "db0", false
	for {
		op, err := p.r.ReadByte()
		if err != nil {
			return nil, nil, fmt.Errorf("the RDB ends without its end marker: %w", err)
		}
		switch op {
		case 0xFF: // EOF
			return keys, expiring, nil
		case 0xFE: // SELECTDB
			n, err := p.length()
			if err != nil {
				return nil, nil, err
			}
			db = "db" + strconv.FormatUint(n, 10)
		case 0xFB: // RESIZEDB
			err = p.lengths(2)
		case 0xFA: // AUX
			err = p.strings(2)
		case 0xFD: // EXPIRETIME (seconds)
			err, expires = p.skip(4), true
		case 0xFC: // EXPIRETIME_MS
			err, expires = p.skip(8), true
		case 0xF9: // FREQ
			err = p.skip(1)
		case 0xF8: // IDLE
			err = p.lengths(1)
		case 0xF7: // MODULE_AUX
			if err = p.lengths(2); err == nil { // module id, when
				err = p.moduleValue()
			}
		case 0xF5: // FUNCTION2
			err = p.strings(1)
		case 0xF4: // SLOT_INFO
			err = p.lengths(3)
		default:
			if err = p.strings(1); err == nil { // the key
				err = p.value(op)
			}
			if err == nil {
				keys[db]++
				if expires {
					expiring[db]++
				}
			}
			expires = false
		}
		if err != nil {
			return nil, nil, err
		}
	}
}

// errRDBUnknown is returned for an RDB with a value type or opcode this parser cannot skip.
var errRDBUnknown = errors.New("the RDB holds a value type this version cannot count")

type rdbParser struct{ r *bufio.Reader }

func (p *rdbParser) skip(n uint64) error {
	for n > 0 {
		k := int(min(n, 1<<30))
		if _, err := p.r.Discard(k); err != nil {
			return fmt.Errorf("the RDB is cut short: %w", err)
		}
		n -= uint64(k)
	}
	return nil
}

// lengthOrEncoding reads a length, or the special encoding of a string (encoded true).
func (p *rdbParser) lengthOrEncoding() (n uint64, encoded bool, err error) {
	b, err := p.r.ReadByte()
	if err != nil {
		return 0, false, fmt.Errorf("the RDB is cut short: %w", err)
	}
	switch b >> 6 {
	case 0:
		return uint64(b & 0x3F), false, nil
	case 1:
		b2, err := p.r.ReadByte()
		return uint64(b&0x3F)<<8 | uint64(b2), false, err
	case 3:
		return uint64(b & 0x3F), true, nil
	}
	switch b {
	case 0x80:
		var v [4]byte
		_, err := io.ReadFull(p.r, v[:])
		return uint64(binary.BigEndian.Uint32(v[:])), false, err
	case 0x81:
		var v [8]byte
		_, err := io.ReadFull(p.r, v[:])
		return binary.BigEndian.Uint64(v[:]), false, err
	}
	return 0, false, fmt.Errorf("bad length encoding 0x%x in the RDB", b)
}

func (p *rdbParser) length() (uint64, error) {
	n, encoded, err := p.lengthOrEncoding()
	if err == nil && encoded {
		err = fmt.Errorf("an encoded string where the RDB needs a length")
	}
	return n, err
}

func (p *rdbParser) lengths(k int) error {
	for range k {
		if _, err := p.length(); err != nil {
			return err
		}
	}
	return nil
}

// strings skips k strings.
func (p *rdbParser) strings(k uint64) error {
	for range k {
		n, encoded, err := p.lengthOrEncoding()
		if err != nil {
			return err
		}
		if encoded {
			switch n {
			case 0:
				n = 1
			case 1:
				n = 2
			case 2:
				n = 4
			case 3: // LZF: compressed length, uncompressed length, data
				if n, err = p.length(); err == nil {
					_, err = p.length()
				}
				if err != nil {
					return err
				}
			default:
				return fmt.Errorf("bad string encoding %d in the RDB", n)
			}
		}
		if err := p.skip(n); err != nil {
			return err
		}
	}
	return nil
}

// value skips one value of the given type.
func (p *rdbParser) value(typ byte) error {
	switch typ {
	case 0, 9, 10, 11, 12, 13, 16, 17, 20: // string, and the types stored as one blob
		return p.strings(1)
	case 1, 2, 14: // list, set, quicklist: n strings
		n, err := p.length()
		if err != nil {
			return err
		}
		return p.strings(n)
	case 4: // hash: n pairs
		n, err := p.length()
		if err != nil {
			return err
		}
		return p.strings(2 * n)
	case 3: // zset: n members and scores written as short strings
		n, err := p.length()
		if err != nil {
			return err
		}
		for range n {
			if err := p.strings(1); err != nil {
				return err
			}
			b, err := p.r.ReadByte()
			if err != nil {
				return err
			}
			if b < 253 {
				if err := p.skip(uint64(b)); err != nil {
					return err
				}
			}
		}
		return nil
	case 5: // zset2: n members and binary doubles
		n, err := p.length()
		if err != nil {
			return err
		}
		for range n {
			if err := p.strings(1); err != nil {
				return err
			}
			if err := p.skip(8); err != nil {
				return err
			}
		}
		return nil
	case 18: // quicklist 2: n nodes of (container, blob)
		n, err := p.length()
		if err != nil {
			return err
		}
		for range n {
			if err := p.lengths(1); err != nil {
				return err
			}
			if err := p.strings(1); err != nil {
				return err
			}
		}
		return nil
	case 7: // module 2: module id, then self-describing fields
		if err := p.lengths(1); err != nil {
			return err
		}
		return p.moduleValue()
	case 15, 19, 21:
		return p.stream(typ)
	}
	return fmt.Errorf("%w (type %d)", errRDBUnknown, typ)
}

// moduleValue skips a module value's fields up to their end marker.
func (p *rdbParser) moduleValue() error {
	for {
		op, err := p.length()
		if err != nil {
			return err
		}
		switch op {
		case 0: // EOF
			return nil
		case 1, 2: // signed, unsigned integer
			err = p.lengths(1)
		case 3: // float
			err = p.skip(4)
		case 4: // double
			err = p.skip(8)
		case 5: // string
			err = p.strings(1)
		default:
			return fmt.Errorf("%w (module field %d)", errRDBUnknown, op)
		}
		if err != nil {
			return err
		}
	}
}

// stream skips a stream (listpacks, then metadata, consumer groups and their pending lists).
func (p *rdbParser) stream(typ byte) error {
	n, err := p.length()
	if err != nil {
		return err
	}
	if err := p.strings(2 * n); err != nil { // node keys and listpacks
		return err
	}
	meta := 3 // length, last id (ms, seq)
	if typ >= 19 {
		meta += 5 // first id, max deleted id, entries added
	}
	if err := p.lengths(meta); err != nil {
		return err
	}
	groups, err := p.length()
	if err != nil {
		return err
	}
	for range groups {
		if err := p.strings(1); err != nil { // name
			return err
		}
		k := 2 // last id
		if typ >= 19 {
			k++ // entries read
		}
		if err := p.lengths(k); err != nil {
			return err
		}
		pending, err := p.length()
		if err != nil {
			return err
		}
		for range pending {
			if err := p.skip(16 + 8); err != nil { // id, delivery time
				return err
			}
			if err := p.lengths(1); err != nil { // delivery count
				return err
			}
		}
		consumers, err := p.length()
		if err != nil {
			return err
		}
		for range consumers {
			if err := p.strings(1); err != nil {
				return err
			}
			seen := uint64(8)
			if typ >= 21 {
				seen += 8 // active time
			}
			if err := p.skip(seen); err != nil {
				return err
			}
			owned, err := p.length()
			if err != nil {
				return err
			}
			if err := p.skip(16 * owned); err != nil {
				return err
			}
		}
	}
	return nil
}
