//! WAV files: one writer, fed block by block, so a long piece never needs a buffer of its own
//! length (a renderer streams into the file; samples already in memory go through the same code).

use crate::fsutil::write_atomic_with;
use crate::sound::format::Format;
use crate::sound::renderer::Renderer;
use anyhow::{bail, Result};
use std::io::{Seek, Write};
use std::path::Path;

/// Frames rendered and written at a time.
const CHUNK_FRAMES: usize = 4096;

/// Sample encoding of a WAV file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WavEncoding {
    /// 16-bit PCM: what every player reads.
    #[default]
    Pcm16,
    /// 32-bit float.
    Float32,
}

/// Writes a WAV stream of `format` into `out`: `next` fills a buffer of interleaved samples
/// and returns how many frames it wrote, 0 at the end.
fn write_stream<W: Write + Seek>(
    out: W,
    format: Format,
    encoding: WavEncoding,
    mut next: impl FnMut(&mut [f32]) -> usize,
) -> Result<()> {
    let spec = hound::WavSpec {
        channels: format.channels,
        sample_rate: format.sample_rate,
        bits_per_sample: match encoding {
            WavEncoding::Pcm16 => 16,
            WavEncoding::Float32 => 32,
        },
        sample_format: match encoding {
            WavEncoding::Pcm16 => hound::SampleFormat::Int,
            WavEncoding::Float32 => hound::SampleFormat::Float,
        },
    };
    let mut writer = hound::WavWriter::new(out, spec)?;
    let channels = format.channels as usize;
    let mut buffer = vec![0.0f32; CHUNK_FRAMES * channels];
    loop {
        let frames = next(&mut buffer);
        if frames == 0 {
            break;
        }
        let samples = &buffer[..frames * channels];
        match encoding {
            WavEncoding::Pcm16 => {
                let mut chunk = writer.get_i16_writer(samples.len() as u32);
                for &s in samples {
                    chunk.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16);
                }
                chunk.flush()?;
            }
            WavEncoding::Float32 => {
                for &s in samples {
                    writer.write_sample(s)?;
                }
            }
        }
    }
    writer.finalize()?;
    Ok(())
}

/// Renders what `renderer` has left into a WAV file at `path`, block by block, atomically (a
/// failure leaves no file and any old one whole). A SoundFont synth that fails midway is an error.
pub fn write_file(path: &Path, renderer: &mut Renderer, encoding: WavEncoding) -> Result<()> {
    let format = renderer.format();
    write_atomic_with(path, |file| {
        write_stream(file, format, encoding, |buffer| renderer.fill(buffer))?;
        if let Some(why) = renderer.failure() {
            bail!("the SoundFont synth failed while rendering: {why}");
        }
        Ok(())
    })
}

/// Interleaved samples as the bytes of a WAV file.
pub fn wav_bytes(samples: &[f32], format: Format, encoding: WavEncoding) -> Result<Vec<u8>> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    let mut rest = samples;
    write_stream(&mut cursor, format, encoding, |buffer| {
        let n = buffer.len().min(rest.len());
        buffer[..n].copy_from_slice(&rest[..n]);
        rest = &rest[n..];
        n / format.channels as usize
    })?;
    Ok(cursor.into_inner())
}
