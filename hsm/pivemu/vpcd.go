package pivemu

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// ATR is a YubiKey 5's answer to reset. It advertises T=1 (piv-go connects
// with T=1 only) and extended length fields.
var ATR = []byte{
	0x3b, 0xfd, 0x13, 0x00, 0x00, 0x81, 0x31, 0xfe, 0x15, 0x80, 0x73, 0xc0,
	0x21, 0xc0, 0x57, 0x59, 0x75, 0x62, 0x69, 0x4b, 0x65, 0x79, 0x40,
}

// ErrRemoved is returned by Serve when the card was pulled out of the
// reader by the RemoveAfter fault.
var ErrRemoved = errors.New("card removed from reader")

// helloTimeout is how long a new vpcd connection may stay silent.
const helloTimeout = 2 * time.Second

// vpcd control messages (one-byte payloads).
const (
	ctrlOff   = 0x00
	ctrlOn    = 0x01
	ctrlReset = 0x02
	ctrlATR   = 0x04
)

// PowerOns counts how often the reader has powered the card on. pcscd
// powers a card on when it notices it in the reader, so a count that has
// grown since Serve began means that clients can now connect to it.
func (c *Card) PowerOns() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.powerOns
}

// RemoveAfter arms the removal fault: the card leaves the reader after
// answering n more command APDUs. Zero disarms it.
func (c *Card) RemoveAfter(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeAfter, c.counted = n, 0
}

// Serve makes a card from cfg and serves it to vpcd at cfg.Addr until ctx
// ends (then it returns nil) or the card is removed (ErrRemoved).
func Serve(ctx context.Context, cfg Config) error {
	c, err := NewCard(cfg)
	if err != nil {
		return err
	}
	return c.Serve(ctx, cfg.Addr)
}

// Serve inserts the card into vpcd's reader at addr (host:port): the card
// is vpcd's TCP client. It dials until vpcd listens, and dials again when
// vpcd drops the connection (pcscd restarted). It returns nil when ctx
// ends, ErrRemoved when the RemoveAfter fault fires. The card keeps its
// state, so Serve may be called again to reinsert it.
func (c *Card) Serve(ctx context.Context, addr string) error {
	if addr == "" {
		return fmt.Errorf("no vpcd address: %w", ErrBadConfig)
	}
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.logf("connected to vpcd at %s", addr)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		err = c.session(ctx, conn)
		c.PowerOff()
		if errors.Is(err, ErrRemoved) {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		// vpcd went away; wait for it to come back.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// session serves one vpcd connection until it fails, ctx ends or the card
// is removed.
func (c *Card) session(ctx context.Context, conn net.Conn) error {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	tc, _ := conn.(*net.TCPConn)
	if tc != nil {
		tc.SetNoDelay(true)
	}
	var hdr [2]byte
	buf := make([]byte, 0, 512)
	// vpcd polls a card it accepted within a fraction of a second. A
	// connection made while pcscd was still loading its readers can sit
	// in a listen queue nobody accepts from: give up on it and redial.
	conn.SetReadDeadline(time.Now().Add(helloTimeout))
	for first := true; ; first = false {
		if tc != nil {
			quickAck(tc) // vpcd writes length and payload separately
		}
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return fmt.Errorf("reading from vpcd: %w", err)
		}
		if first {
			conn.SetReadDeadline(time.Time{})
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if tc != nil {
			quickAck(tc)
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		msg := buf[:n]
		if _, err := io.ReadFull(conn, msg); err != nil {
			return fmt.Errorf("reading from vpcd: %w", err)
		}
		var out []byte
		removed := false
		switch {
		case n == 0:
			continue
		case n == 1:
			c.logf("vpcd control %02x", msg[0])
			switch msg[0] {
			case ctrlOff, ctrlReset:
				c.PowerOff()
			case ctrlOn:
				c.mu.Lock()
				c.powerOns++
				c.mu.Unlock()
			case ctrlATR:
				out = ATR
			}
		default:
			if c.cfg.Latency > 0 {
				select {
				case <-time.After(c.cfg.Latency):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			out = c.Transmit(msg)
			c.logf("apdu ins %02x: sw %02x%02x, %d bytes", msg[1], out[len(out)-2], out[len(out)-1], len(out)-2)
			c.mu.Lock()
			if c.removeAfter > 0 {
				c.counted++
				if c.counted >= c.removeAfter {
					removed = true
					c.removeAfter, c.counted = 0, 0
				}
			}
			c.mu.Unlock()
		}
		if out != nil {
			frame := make([]byte, 2+len(out))
			binary.BigEndian.PutUint16(frame, uint16(len(out)))
			copy(frame[2:], out)
			if _, err := conn.Write(frame); err != nil {
				return fmt.Errorf("writing to vpcd: %w", err)
			}
		}
		if removed {
			return ErrRemoved
		}
	}
}

func (c *Card) logf(format string, args ...any) {
	if c.cfg.Logf != nil {
		c.cfg.Logf("card %d: "+format, append([]any{c.cfg.Serial}, args...)...)
	}
}
