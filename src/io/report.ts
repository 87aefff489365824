import { join } from 'node:path';
import sharp from 'sharp';
import { InputError } from '../errors.js';
import { checkRelativeFile, renderReport, THUMBNAIL_SIZE, type ReportData } from '../report/render.js';
import { safeFileName } from '../workflow/file-names.js';
import { writeFileAtomic } from './files.js';

/**
 * The HTML report written to the out folder: out/report.html (rendered by
 * report/render.ts) plus thumbnails in out/thumbs/, both written atomically.
 */

// The renderer and its data, for Node callers of writeReport.
export { escapeHtml, fileUrl, renderReport, type ImageResult, type OutputFile, type ReportData } from '../report/render.js';

/** Writes outDir/report.html and outDir/thumbs/*; returns the report's path. */
export async function writeReport(outDir: string, data: ReportData): Promise<string> {
  const thumbs = await writeThumbnails(
    outDir,
    data.images.flatMap((i) => i.files.map((f) => f.file)),
  );
  const path = join(outDir, 'report.html');
  await writeFileAtomic(path, renderReport(data, thumbs));
  return path;
}

/**
 * Writes a thumbnail (at most THUMBNAIL_SIZE on the long side, never
 * enlarged) of each file into outDir/thumbs/; returns file -> thumbnail,
 * both relative to outDir.
 */
async function writeThumbnails(outDir: string, files: string[]): Promise<Map<string, string>> {
  const unique = [...new Set(files)];
  unique.forEach(checkRelativeFile); // before sharp reads anything outside outDir
  const taken = new Set<string>();
  const thumbs = new Map(unique.map((file) => [file, `thumbs/${safeFileName(file.replace(/\.[^./]*$/, ''), '.png', taken)}`]));
  // sharp queues the work on libuv's thread pool, so this decodes a few files at a time, not all at once.
  await Promise.all(
    [...thumbs].map(async ([file, thumb]) => {
      let png: Buffer;
      try {
        png = await sharp(join(outDir, file)).resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'inside', withoutEnlargement: true }).png().toBuffer();
      } catch (e) {
        throw new InputError(`${join(outDir, file)}: cannot make the report's thumbnail: ${(e as Error).message}`);
      }
      await writeFileAtomic(join(outDir, thumb), png);
    }),
  );
  return thumbs;
}
