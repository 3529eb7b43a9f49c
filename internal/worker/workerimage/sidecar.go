package workerimage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker-backup/docker-backup/internal/version"
	"github.com/moby/moby/client"
)

// SidecarRepository names the sidecar image: make image and make dist tag it
// "docker-backup-sidecar:<version>".
const SidecarRepository = "docker-backup-sidecar"

// The sidecar binary's path in its image.
const sidecarProgram = "/sidecar"

// PluginEngine is the part of the Engine API PluginImage uses.
type PluginEngine interface {
	ImageEngine
	ImagePull(ctx context.Context, ref string, options client.ImagePullOptions) (client.ImagePullResponse, error)
}

// Release is the build whose sidecar image may serve as the worker: its version, the
// digests make dist pinned and the registry repository it was pushed to ("": none).
type Release struct {
	Version    string
	Pins       version.Pins
	Repository string
}

// ThisRelease is the Release linked into this program (see package version).
func ThisRelease() (Release, error) {
	pins, err := version.SidecarPins()
	if err != nil {
		return Release{}, err
	}
	return Release{Version: version.Version, Pins: pins, Repository: version.SidecarRepository}, nil
}

// released reports whether v names one build: not "dev", not a modified tree.
func (r Release) released() bool {
	return r.Version != "" && r.Version != "dev" && !strings.HasSuffix(r.Version, "-dirty")
}

// PluginImage returns the plugin's Runner.Image: its own executable as a one-file image
// (SelfImage) when it can be — a static Linux binary of the engine's architecture — else
// the sidecar image of its own release (SidecarImage): a plugin on macOS or Windows, or
// one whose engine has another architecture, still works beside the data instead of
// through the Engine's archive API.
func PluginImage(engine PluginEngine, rel Release, log *slog.Logger) func(ctx context.Context) (Image, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	self, sidecar := SelfImage(engine, log), SidecarImage(engine, rel, log)
	return func(ctx context.Context) (Image, error) {
		img, selfErr := self(ctx)
		if selfErr == nil || ctx.Err() != nil {
			return img, selfErr
		}
		img, err := sidecar(ctx)
		if err != nil {
			return Image{}, fmt.Errorf("%w; %w", selfErr, err)
		}
		log.Info("worker image: the sidecar image of this release, since this plugin cannot be its own worker",
			"image", img.Ref, "why", selfErr.Error())
		return img, nil
	}
}

// SidecarImage returns a Runner.Image running the worker in the sidecar image of rel's
// version, found on the engine by its tag or by a pinned digest, else pulled by the pinned
// index digest from rel.Repository when there is one. With pins, an image that is not the
// release's (another build under the same tag) is refused.
func SidecarImage(engine PluginEngine, rel Release, log *slog.Logger) func(ctx context.Context) (Image, error) {
	return func(ctx context.Context) (Image, error) {
		img, _, err := findSidecar(ctx, engine, rel, true, log)
		return img, err
	}
}

// findSidecar looks for rel's sidecar image for the engine's platform, pulling it when pull
// is set; it also says how it was found.
func findSidecar(ctx context.Context, engine PluginEngine, rel Release, pull bool, log *slog.Logger) (Image, string, error) {
	if !rel.released() {
		return Image{}, "", fmt.Errorf("this plugin is a development build (version %q): only a release uses the sidecar image of its own version", rel.Version)
	}
	platform, err := enginePlatform(ctx, engine)
	if err != nil {
		return Image{}, "", err
	}
	tag := SidecarRepository + ":" + rel.Version
	var refused error
	for _, ref := range append([]string{tag}, rel.Pins.Images[platform]...) {
		in, err := engine.ImageInspect(ctx, ref)
		if cerrdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return Image{}, "", fmt.Errorf("looking for the sidecar image %s: %w", ref, err)
		}
		if err := rel.accepts(in, ref, platform); err != nil {
			refused = err
			continue
		}
		return sidecarRun(in.ID), rel.how(tag, in.ID), nil
	}
	source := rel.Repository + "@" + rel.Pins.Index
	if rel.Repository == "" || rel.Pins.Index == "" {
		return Image{}, "", errors.Join(fmt.Errorf("the sidecar image %s for %s is not on the engine: load it from the release (docker load -i sidecar-%s.tar)",
			tag, platform, strings.ReplaceAll(platform, "/", "-")), refused)
	}
	if !pull {
		return Image{}, source + ", pulled on first use", nil
	}
	if log != nil {
		log.Info("pulling the sidecar image of this release for worker containers", "image", source)
	}
	if err := pullImage(ctx, engine, source); err != nil {
		return Image{}, "", errors.Join(err, refused)
	}
	in, err := engine.ImageInspect(ctx, source)
	if err != nil {
		return Image{}, "", fmt.Errorf("looking for the pulled sidecar image %s: %w", source, err)
	}
	if err := rel.accepts(in, source, platform); err != nil {
		return Image{}, "", err
	}
	return sidecarRun(in.ID), rel.how(source, in.ID), nil
}

func sidecarRun(id string) Image {
	return Image{Ref: id, Entrypoint: []string{sidecarProgram, Command}}
}

func (r Release) how(ref, id string) string {
	pinned := "not pinned: a release built without make dist"
	if !r.Pins.Empty() {
		pinned = "pinned by this release"
	}
	return fmt.Sprintf("%s (%s, %s)", ref, shortID(id), pinned)
}

func shortID(id string) string {
	if len(id) > len("sha256:")+12 {
		return id[:len("sha256:")+12]
	}
	return id
}

// accepts says why the image found as ref cannot serve: another platform, or, when rel has
// pins, not the release's image.
func (r Release) accepts(in client.ImageInspectResult, ref, platform string) error {
	if got := imagePlatform(in); got != platform {
		return fmt.Errorf("the image %s is for %s, the engine runs %s", ref, got, platform)
	}
	if r.Pins.Empty() {
		return nil
	}
	if r.Pins.Known(platform, in.ID) {
		return nil
	}
	for _, rd := range in.RepoDigests {
		if _, d, ok := strings.Cut(rd, "@"); ok && r.Pins.Known(platform, d) {
			return nil
		}
	}
	return fmt.Errorf("the image %s (%s) is not the sidecar image of this release %s: remove it, and load the release's sidecar-%s.tar",
		ref, shortID(in.ID), r.Version, strings.ReplaceAll(platform, "/", "-"))
}

// imagePlatform is "os/arch", with the variant for 32-bit ARM ("linux/arm/v7").
func imagePlatform(in client.ImageInspectResult) string {
	p := in.Os + "/" + in.Architecture
	if in.Architecture == "arm" && in.Variant != "" {
		p += "/" + in.Variant
	}
	return p
}

// enginePlatform is the engine's platform in image terms ("linux/amd64", "linux/arm/v7").
func enginePlatform(ctx context.Context, engine interface {
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
}) (string, error) {
	info, err := engine.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", fmt.Errorf("asking the engine for its platform: %w", err)
	}
	if info.Info.OSType != "linux" {
		return "", fmt.Errorf("the engine runs %s containers: workers need Linux", info.Info.OSType)
	}
	switch a := info.Info.Architecture; a {
	case "armv7l", "armv8l":
		return "linux/arm/v7", nil
	case "armv6l":
		return "linux/arm/v6", nil
	default:
		return "linux/" + goArch(a), nil
	}
}

func pullImage(ctx context.Context, engine PluginEngine, ref string) error {
	resp, err := engine.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return fmt.Errorf("pulling the sidecar image %s: %w", ref, err)
	}
	defer resp.Close()
	if err := resp.Wait(ctx); err != nil {
		return fmt.Errorf("pulling the sidecar image %s: %w", ref, err)
	}
	return nil
}

// DescribePluginImage says which image the plugin's worker containers use, and why,
// without importing or pulling anything (detect's output).
func DescribePluginImage(ctx context.Context, engine PluginEngine, rel Release) string {
	ref, selfErr := describeSelf(ctx, engine)
	if selfErr == nil {
		return "this plugin's own binary, as the one-file image " + ref + " (imported on first use)"
	}
	_, how, err := findSidecar(ctx, engine, rel, false, nil)
	if err != nil {
		return fmt.Sprintf("none, volumes go through the Engine's archive API (slower): %v; %v", selfErr, err)
	}
	return fmt.Sprintf("the sidecar image %s, since %v", how, selfErr)
}

// describeSelf returns the image SelfImage makes, or why it cannot.
func describeSelf(ctx context.Context, engine PluginEngine) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding this program's executable: %w", err)
	}
	if err := canServe(ctx, engine, exe); err != nil {
		return "", err
	}
	sum, _, err := executableID(exe)
	if err != nil {
		return "", err
	}
	return ImageRepository + ":" + sum[:16], nil
}
