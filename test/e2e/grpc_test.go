package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// grpcTestServer is the interop TestService: UnaryCall echoes (or fails with
// the status asked for), FullDuplexCall answers every message as it comes.
type grpcTestServer struct {
	testpb.UnimplementedTestServiceServer
}

func (grpcTestServer) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	grpc.SetHeader(ctx, metadata.Pairs("x-backend-header", "h1"))
	grpc.SetTrailer(ctx, metadata.Pairs("x-backend-trailer", "t1"))
	if s := in.GetResponseStatus(); s != nil && s.GetCode() != 0 {
		return nil, status.Error(codes.Code(s.GetCode()), s.GetMessage())
	}
	md, _ := metadata.FromIncomingContext(ctx)
	body := "echo:" + string(in.GetPayload().GetBody())
	if v := md.Get("x-client"); len(v) == 1 {
		body += " client:" + v[0]
	}
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: []byte(body)}}, nil
}

func (grpcTestServer) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	n := 0
	for {
		in, err := stream.Recv()
		if err == io.EOF {
			stream.SetTrailer(metadata.Pairs("x-stream-count", fmt.Sprint(n)))
			return nil
		}
		if err != nil {
			return err
		}
		n++
		if string(in.GetPayload().GetBody()) == "fail" {
			return status.Error(codes.NotFound, "no such thing: fail")
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: []byte(fmt.Sprintf("re%d:%s", n, in.GetPayload().GetBody()))}}); err != nil {
			return err
		}
	}
}

func startGRPCBackend(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	testpb.RegisterTestServiceServer(s, grpcTestServer{})
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

func TestGRPCThroughH2C(t *testing.T) {
	t.Parallel()
	be := startGRPCBackend(t)
	gh := startGatehouse(t, fmt.Sprintf(`listeners:
  - addr: {{LISTEN}}
    h2c: true
admin: {addr: "{{ADMIN}}"}
upstreams:
  grpc: {targets: ["http://%s"], transport: h2c}
sites:
  - routes:
      - {match: {path_prefix: /}, upstream: grpc}
`, be))
	conn, err := grpc.NewClient(gh.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)

	t.Run("unary", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "x-client", "c1"), 10*time.Second)
		defer cancel()
		var hdr, trl metadata.MD
		resp, err := client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("hello")}}, grpc.Header(&hdr), grpc.Trailer(&trl))
		if err != nil {
			t.Fatalf("UnaryCall: %v\n%s", err, tail(gh.stderr.String(), 2000))
		}
		if got := string(resp.GetPayload().GetBody()); got != "echo:hello client:c1" {
			t.Errorf("body %q", got)
		}
		if v := hdr.Get("x-backend-header"); len(v) != 1 || v[0] != "h1" {
			t.Errorf("header metadata %v", hdr)
		}
		if v := trl.Get("x-backend-trailer"); len(v) != 1 || v[0] != "t1" {
			t.Errorf("trailer metadata %v", trl)
		}
	})

	t.Run("unary NotFound", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no user 42"}})
		s, _ := status.FromError(err)
		if s.Code() != codes.NotFound || s.Message() != "no user 42" {
			t.Fatalf("got %v (code %v, message %q), want NotFound \"no user 42\"", err, s.Code(), s.Message())
		}
	})

	t.Run("bidi interleaved", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stream, err := client.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Each answer is read before the next message is sent: the streams
		// must flow both ways at once, nothing held back until the end.
		const n = 5
		for i := 1; i <= n; i++ {
			msg := fmt.Sprintf("m%d", i)
			if err := stream.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte(msg)}}); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			resp, err := stream.Recv()
			if err != nil {
				t.Fatalf("recv %d: %v", i, err)
			}
			if got, want := string(resp.GetPayload().GetBody()), fmt.Sprintf("re%d:%s", i, msg); got != want {
				t.Fatalf("recv %d: %q, want %q", i, got, want)
			}
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != io.EOF {
			t.Fatalf("end of stream: %v, want EOF (status OK)", err)
		}
		if v := stream.Trailer().Get("x-stream-count"); len(v) != 1 || v[0] != fmt.Sprint(n) {
			t.Errorf("trailer %v", stream.Trailer())
		}
	})

	t.Run("bidi NotFound", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stream, err := client.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stream.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte("ok")}})
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
		stream.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte("fail")}})
		_, err = stream.Recv()
		s, _ := status.FromError(err)
		if s.Code() != codes.NotFound || s.Message() != "no such thing: fail" {
			t.Fatalf("got %v, want NotFound", err)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		errs := make(chan error, 16)
		for i := 0; i < 16; i++ {
			go func() {
				resp, err := client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte(fmt.Sprint(i))}})
				if err == nil && string(resp.GetPayload().GetBody()) != "echo:"+fmt.Sprint(i) {
					err = fmt.Errorf("call %d: body %q", i, resp.GetPayload().GetBody())
				}
				errs <- err
			}()
		}
		for i := 0; i < 16; i++ {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	})
}

// TestGRPCToTLSBackend reaches a gRPC server over TLS (transport h2, ALPN
// h2, custom CA) from a plaintext h2c client.
func TestGRPCToTLSBackend(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t, "gh-grpc")
	cert, _, _ := pki.issue(t, "grpc-backend", false, []string{"grpc.test"}, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})))
	testpb.RegisterTestServiceServer(s, grpcTestServer{})
	go s.Serve(l)
	t.Cleanup(s.Stop)
	gh := startGatehouse(t, fmt.Sprintf(`listeners:
  - addr: {{LISTEN}}
    h2c: true
admin: {addr: "{{ADMIN}}"}
upstreams:
  grpc: {targets: ["https://%s"], transport: h2, tls: {ca_file: %q, server_name: grpc.test}}
sites:
  - routes:
      - {match: {path_prefix: /}, upstream: grpc}
`, l.Addr(), pki.caFile))
	conn, err := grpc.NewClient(gh.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("tls")}})
	if err != nil || string(resp.GetPayload().GetBody()) != "echo:tls" {
		t.Fatalf("UnaryCall: %v %v\n%s", resp, err, tail(gh.stderr.String(), 2000))
	}
	_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "gone"}})
	if s, _ := status.FromError(err); s.Code() != codes.NotFound || s.Message() != "gone" {
		t.Fatalf("got %v, want NotFound gone", err)
	}
	stream, err := client.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		stream.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte("x")}})
		r, err := stream.Recv()
		if err != nil || string(r.GetPayload().GetBody()) != fmt.Sprintf("re%d:x", i) {
			t.Fatalf("recv %d: %v %v", i, r, err)
		}
	}
	stream.CloseSend()
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}
